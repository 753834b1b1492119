CREATE TABLE loans (
    id bigserial PRIMARY KEY,
    book_id bigint NOT NULL REFERENCES books (id),
    member text NOT NULL,
    lent_at timestamptz NOT NULL DEFAULT now()
);
