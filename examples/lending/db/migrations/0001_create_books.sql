CREATE TABLE books (
    id bigserial PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    copies integer NOT NULL DEFAULT 1
);
