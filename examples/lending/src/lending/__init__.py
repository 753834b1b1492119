"""A library-lending service: members borrow and return books."""
