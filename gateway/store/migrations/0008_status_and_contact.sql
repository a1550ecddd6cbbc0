-- 0008: which state changes the status publisher has told hospitals about (told = 1), so each is told
-- once; what happened before this version is not told. And the contact details of a party that a
-- patient can be given (kommune services).
ALTER TABLE transitions ADD COLUMN told INTEGER;
UPDATE transitions SET told = 1;
CREATE INDEX transitions_untold ON transitions(id) WHERE told IS NULL;
ALTER TABLE parties ADD COLUMN phone TEXT;
ALTER TABLE parties ADD COLUMN opening_hours TEXT;
