//! apmnet: .NET's asynchronous network streams (System.Net's Begin/End, the APM pattern) as a
//! native library with a C ABI, for C and C++, .NET (P/Invoke) and Python (ctypes).
//!
//! Data flows one way: C call -> `ffi` check -> core object (`net`, `tls` over `layered`, `stream`) -> `engine`
//! -> completion (`op`) -> the IAsyncResult (`async_result`) -> its `Hook`, which `ffi`
//! implements with the caller's callback. Only `ffi` names C types, handles or callbacks
//! (tests/layering.rs keeps it so); the core below it is a plain Rust library.

pub mod async_result;
pub mod channel_binding;
pub mod custom_stream;
pub mod engine;
pub mod error;
pub mod fault;
pub mod http;
pub mod ffi;
pub mod layered;
pub mod negotiate;
pub mod net;
pub mod op;
pub mod stream;
pub mod table;
pub mod tls;
