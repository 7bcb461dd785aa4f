-- Each unit and project as its list answers it, written by the aggregate store with the state
-- (councils.py UNITS and PROJECTS, ``answer``), emptied by the kit's trigger when another
-- statement changes the state (an erasure). A row without one (written before this migration, or
-- erased) is answered from its state through the model, as every row was before.
ALTER TABLE units ADD COLUMN answer text;
ALTER TABLE projects ADD COLUMN answer text;
SELECT kit_forget_stale_answers_on('units', 'answer', 'state');
SELECT kit_forget_stale_answers_on('projects', 'answer', 'state');
