-- The people erased in this service (services/kit/erasure.py): a digest of the erased id, never
-- the id itself, and the pseudonym that replaced it. A second erasure of the same person (a repeated
-- command, or another service's person.erased.v1 arriving after this service's own) finds the row
-- and changes nothing.
CREATE TABLE erasures (
    digest    text        PRIMARY KEY,   -- sha256 of the erased id, hex
    pseudonym text        NOT NULL UNIQUE,
    origin    text        NOT NULL,      -- command | <service> whose person.erased.v1 it reacted to
    erased_at timestamptz NOT NULL DEFAULT now()
);
