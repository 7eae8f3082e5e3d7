-- The API pages through a county's households by grid unit, and finds the residents of a
-- page by name: indexes for those reads.
CREATE INDEX households_neighbourhood ON households (neighbourhood_code, code);
CREATE INDEX residents_name ON residents (name);
