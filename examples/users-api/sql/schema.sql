-- Applied once, when spillway first creates databases.main: the report's users table and its
-- ten test users. `id` is an integer (not bigint) so that node-postgres returns it as a number,
-- as the report's output shows; pg returns int8 values as strings.
CREATE TABLE users (
    id              integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text        NOT NULL,
    create_datetime timestamptz NOT NULL DEFAULT now(),
    update_datetime timestamptz NOT NULL DEFAULT now()
);

INSERT INTO users (name)
SELECT 'Test User ' || n FROM generate_series(1, 10) AS n;

-- The API's login (secrets.db) only reads.
GRANT SELECT ON users TO api;
