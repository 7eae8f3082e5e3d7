-- Positions as signed SQLite integers.
--
-- A frame's position, session << 32 | seq (docs/protocol.md), runs over 0 .. 2**64 - 1, but
-- an SQLite integer is signed 64-bit: a session of 2**31 or more could not be stored, and the
-- box would never be acknowledged. From now on every column holding a position stores it
-- minus 2**63 (gateway/store/sqlite.py, _pos_in / _pos_out): one to one and order-preserving,
-- so UNIQUE (device_id, seq), ORDER BY seq, max() and `seq > ?` keep their meaning.
--
-- Rows stored so far hold positions below 2**63 as they are; shift them. 2**63 is not an
-- integer literal in SQLite, hence (x - 9223372036854775807 - 1). Old values lie in
-- 0 .. 2**63 - 1 and shifted ones below 0, so no intermediate row breaks UNIQUE (device_id, seq).
--
-- devices.downlink_seq keeps its column DEFAULT 0 (SQLite cannot alter a default without a
-- table rebuild); the store always writes it explicitly, so the default is never used.

UPDATE events SET seq = seq - 9223372036854775807 - 1;
UPDATE devices SET last_seq = last_seq - 9223372036854775807 - 1 WHERE last_seq IS NOT NULL;
UPDATE devices SET downlink_seq = downlink_seq - 9223372036854775807 - 1;
UPDATE tickets SET latest_press_position = latest_press_position - 9223372036854775807 - 1
    WHERE latest_press_position IS NOT NULL;
