"""The shop's customers' own pages: a payment's status (`/pay/{token}`), the help centre
(`/help`) and their feedback (docs/customers.md)."""
