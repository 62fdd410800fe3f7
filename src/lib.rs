//! apmnet: .NET's asynchronous network streams (System.Net's Begin/End, the APM pattern) as a
//! native library with a C ABI, for C and C++, .NET (P/Invoke) and Python (ctypes).
//!
//! Data flows one way: C call -> `ffi` check -> core object (`net`, `stream`) -> `engine` ->
//! completion (`async_result`) -> the caller's callback. The core knows nothing of C; `ffi`
//! knows nothing of sockets.

pub mod async_result;
pub mod custom_stream;
pub mod engine;
pub mod error;
pub mod ffi;
pub mod handle;
pub mod net;
pub mod stream;
pub mod tls;
