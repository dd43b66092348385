-- Applied once, when spillway first creates databases.main.
CREATE TABLE users (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL,
    email      text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO users (name, email) VALUES
    ('Aiko Tanaka', 'aiko@example.com'),
    ('Ben Carter',  'ben@example.com'),
    ('Chen Wei',    'chen@example.com');

-- The API's login (secrets.db) only reads.
GRANT SELECT ON users TO api;
