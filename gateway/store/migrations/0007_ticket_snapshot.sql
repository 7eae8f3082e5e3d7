-- A ticket keeps the rules it opened under: its escalation chain and its clocks. A change of
-- settings applies to tickets opened after it. Tickets opened before this migration take the
-- shipped defaults. Lists are JSON arrays of roles; day clocks a JSON object by category.

ALTER TABLE tickets ADD COLUMN responder_chain TEXT NOT NULL
    DEFAULT '["village_secretary","deputy_secretary","grid_worker","township_duty"]';
ALTER TABLE tickets ADD COLUMN informed_at_open TEXT NOT NULL DEFAULT '["neighbour_chief"]';
ALTER TABLE tickets ADD COLUMN day_chain TEXT NOT NULL
    DEFAULT '["neighbour_chief","group_leader","area_chief","township_duty"]';
ALTER TABLE tickets ADD COLUMN review_role TEXT NOT NULL DEFAULT 'township_duty';
ALTER TABLE tickets ADD COLUMN access_roles TEXT NOT NULL
    DEFAULT '["village_secretary","deputy_secretary","grid_worker"]';
ALTER TABLE tickets ADD COLUMN accept_within_s REAL NOT NULL DEFAULT 300;
ALTER TABLE tickets ADD COLUMN arrive_within_s REAL NOT NULL DEFAULT 1800;
ALTER TABLE tickets ADD COLUMN renotify_gap_s REAL NOT NULL DEFAULT 120;
ALTER TABLE tickets ADD COLUMN red_cancel_window_s REAL NOT NULL DEFAULT 60;
ALTER TABLE tickets ADD COLUMN rating_window_s REAL NOT NULL DEFAULT 259200;
ALTER TABLE tickets ADD COLUMN day_clock_s TEXT NOT NULL
    DEFAULT '{"complex":2592000,"hard":604800,"ordinary":172800,"urgent":7200}';

-- The escalation cursor: `responder_step` is its step; these contacts at that step let
-- their call ring out (a JSON array of contact ids).
ALTER TABLE tickets ADD COLUMN step_no_answer TEXT NOT NULL DEFAULT '[]';

-- Open tickets carry over who has not answered at their step, from the audit trail.
UPDATE tickets SET step_no_answer = (
    SELECT json_group_array(DISTINCT contact_id) FROM ticket_events e
    WHERE e.ticket_id = tickets.id AND e.kind = 'no_answer' AND e.contact_id IS NOT NULL
      AND e.detail = 'step ' || tickets.responder_step
)
WHERE status = 'open';
