-- Erasure of a person (services/points/app/erasure.py). The ledger is append-only, and stays so
-- for every change but one: an erasure replaces the holder's account id by a pseudonymous one in
-- the postings that name it, and removes the free text (the published `detail`). Amounts, kinds, times and transfer ids never change, so every balance and the sum of
-- the ledger (zero) are what they were.
--
-- The change is made by erase_account(), which runs with its owner's rights (the migration's
-- role): a runtime role that has no UPDATE on postings can still erase, and only through it.
-- The trigger lets an UPDATE through only while the function has set `points.erasure`, and only
-- when nothing but the ids and the free text differ.

CREATE OR REPLACE FUNCTION postings_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('points.erasure', true) = 'on'
       AND NEW.seq = OLD.seq AND NEW.transfer_id = OLD.transfer_id AND NEW.amount = OLD.amount
       AND NEW.kind = OLD.kind AND NEW.posted_at = OLD.posted_at AND NEW.recorded_at = OLD.recorded_at
       AND NEW.rule IS NOT DISTINCT FROM OLD.rule AND NEW.category IS NOT DISTINCT FROM OLD.category
       AND NEW.community_id IS NOT DISTINCT FROM OLD.community_id
       AND (NEW.debit_account = OLD.debit_account OR NEW.debit_account LIKE '%erased-%')
       AND (NEW.credit_account = OLD.credit_account OR NEW.credit_account LIKE '%erased-%') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'postings are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE FUNCTION erase_account(old_account text, new_account text, old_holder text, new_holder text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    moved integer;
BEGIN
    IF position('erased-' IN new_account) = 0 OR position('erased-' IN new_holder) = 0 THEN
        RAISE EXCEPTION 'erase_account: % is not a pseudonym', new_account;
    END IF;
    INSERT INTO accounts (account_id, kind, holder_id, community_id, balance, state, oldest_lot_at, opened_at, updated_at)
    SELECT new_account, kind, new_holder, community_id, balance,
           replace(replace(state::text, to_jsonb(old_account)::text, to_jsonb(new_account)::text),
                   to_jsonb(old_holder)::text, to_jsonb(new_holder)::text)::jsonb,
           oldest_lot_at, opened_at, now()
      FROM accounts WHERE account_id = old_account;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    PERFORM set_config('points.erasure', 'on', true);
    UPDATE postings
       SET debit_account = CASE WHEN debit_account = old_account THEN new_account ELSE debit_account END,
           credit_account = CASE WHEN credit_account = old_account THEN new_account ELSE credit_account END,
           account_id = CASE WHEN account_id = old_account THEN new_account ELSE account_id END,
           event = (replace(replace(event::text, to_jsonb(old_account)::text, to_jsonb(new_account)::text),
                            to_jsonb(old_holder)::text, to_jsonb(new_holder)::text)::jsonb) - 'detail'
     WHERE debit_account = old_account OR credit_account = old_account;
    GET DIAGNOSTICS moved = ROW_COUNT;
    PERFORM set_config('points.erasure', 'off', true);
    UPDATE earnings SET account_id = new_account WHERE account_id = old_account;
    UPDATE deeds SET account_id = new_account WHERE account_id = old_account;
    DELETE FROM accounts WHERE account_id = old_account;
    RETURN moved + 1;
END $$;
