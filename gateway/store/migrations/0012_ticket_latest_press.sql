-- A ticket remembers its latest green press in its box's own order (gateway.domain.tickets
-- Ticket.latest_press): the box, the press's position (session << 32 | seq) and the box's
-- timestamp (0: clock not set). A red key pressed before it cancels nothing. NULL for
-- tickets opened before this migration: their red keys are judged on arrival times.

ALTER TABLE tickets ADD COLUMN latest_press_device_id TEXT;
ALTER TABLE tickets ADD COLUMN latest_press_position INTEGER;
ALTER TABLE tickets ADD COLUMN latest_press_device_time INTEGER;
