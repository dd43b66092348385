//! spillway's identity layer: who signed a request (SigV4, `sigv4`), whether their policies allow
//! it (`policy`), and the RDS IAM authentication tokens the proxy accepts as passwords
//! (`rds_token`). Principals and their access keys live in `principals`.
//!
//! Everything here is synchronous, allocation-light CPU work with no I/O, so the proxy can call
//! it on its login path and the AWS endpoint on every request.

pub mod policy;
pub mod principals;
pub mod rds_token;
pub mod resource_policy;
pub mod sigv4;
pub mod time;
