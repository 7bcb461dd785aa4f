-- Outbox keys are the Kafka key's bytes, as they are: a dead letter keeps the key of the record
-- it carries even when that key is not UTF-8 or holds a NUL byte (which a text column refuses).
-- The keys written so far were text: they become their UTF-8 bytes, which is what the relay sent.
ALTER TABLE outbox ALTER COLUMN key TYPE bytea USING convert_to(key, 'UTF8');
