-- A water watch's day history, packed (gateway.domain.water.DayHistory.packed: 15 bytes a
-- day, little-endian: day ordinal int32, first-use minute int16 (-1: none), longest quiet
-- seconds float64, flags uint8 (1: lived, 2: alarmed)), apart from the rest of the watch's
-- state. As JSON rows inside the state it was half of every watch's text, written again on
-- every reading with water use. NULL: the history is still inside the state (a watch last
-- written before this migration); the next write moves it here.
ALTER TABLE water_watches ADD COLUMN history BLOB;
