-- The grid import finds a household's call boxes by household code.

CREATE INDEX devices_household ON devices (household_code);
