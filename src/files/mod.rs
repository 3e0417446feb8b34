//! Signed-URL file streaming on the public listener (`--files DIR`): `GET`/`HEAD`
//! `/files/<path>?expires=<unix>&sig=<hex>`, sans-io. The runtime reads the request head,
//! calls [`route::FilesConfig::answer`], and streams the file range it names.
//!
//! | module | owns |
//! |---|---|
//! | [`sign`] | the canonical string, HMAC-SHA256 links, key rotation, `ringcast sign` |
//! | [`path`] | percent-decoding once, segment rules, staying inside DIR |
//! | [`range`] | `Range: bytes=…` → full, part or 416 |
//! | [`conditional`] | ETag, Last-Modified, If-None-Match, If-Modified-Since, If-Range |
//! | [`mime`] | Content-Type by extension |
//! | [`route`] | one request → status, headers, body |
//!
//! Must not: read files or sockets itself (the runtime does), or render anything (files are
//! sent as they are; HTML is `application/octet-stream` with `nosniff`).

pub mod conditional;
pub mod mime;
pub mod path;
pub mod range;
pub mod route;
pub mod sign;
