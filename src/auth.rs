//! Registry credentials and the `X-Registry-Auth` header.
