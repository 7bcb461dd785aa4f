-- Each regional council as its route answers it (the state, the composition in force, whether it
-- is in effect and when the timer next looks at it), written by the aggregate store with the
-- state (councils.py COUNCILS, ``answer_of``), emptied by the kit's trigger when another statement
-- changes the state. A row without one (written before this migration, or erased) is answered
-- from its state through the model, as before.
ALTER TABLE councils ADD COLUMN answer text;
SELECT kit_forget_stale_answers_on('councils', 'answer', 'state');
