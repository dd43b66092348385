-- Applied once, when spillway first creates databases.main. `id` is an integer (not bigint) so
-- that node-postgres returns it as a number.
CREATE TABLE items (
    id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text    NOT NULL
);

INSERT INTO items (name) VALUES ('private subnet'), ('security group'), ('rds proxy');

-- The function's login (secrets.app, through the proxy) only reads.
GRANT SELECT ON items TO app;
