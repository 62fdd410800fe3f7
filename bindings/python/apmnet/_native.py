"""Loading libapmnet and declaring its C functions for ctypes.

Every function gets ``argtypes`` and ``restype`` from :data:`PROTOTYPES`, which mirrors
``include/apmnet.h`` (the test suite compares the two). ctypes releases the GIL around every call, so
the library's engine threads can run Python callbacks while a Python thread waits inside the library.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
from typing import Any, Callable, Iterator, List, NoReturn, Optional, Tuple
from ctypes import (POINTER, Structure, c_char, c_char_p, c_int32, c_int64, c_size_t, c_uint8, c_uint32,
                    c_uint64, c_void_p)

from .errors import EXCEPTION_FOR_STATUS, ApmError, SocketException, Status

__all__ = ["lib", "library_path", "check", "raise_last_error", "ASYNC_CALLBACK", "PROGRESS_CALLBACK",
           "VALIDATION_CALLBACK", "SELECTION_CALLBACK", "LOOKUP_CALLBACK", "CUSTOM_COMPLETE", "CUSTOM_BEGIN_READ",
           "CUSTOM_BEGIN_WRITE", "CUSTOM_CLOSE", "StreamVtable"]

#: ``typedef void (*apm_async_callback)(apm_async_result *result, void *state);``
ASYNC_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
#: ``typedef void (*apm_send_file_progress)(apm_async_result *result, int64_t bytes_sent, void *state);``
PROGRESS_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_int64, c_void_p)
#: ``typedef int32_t (*apm_remote_certificate_validation_callback)(apm_stream *sender,
#: apm_certificate *certificate, apm_certificate *const *chain, size_t chain_len,
#: int32_t ssl_policy_errors, void *state);``
VALIDATION_CALLBACK = ctypes.CFUNCTYPE(c_int32, c_void_p, c_void_p, POINTER(c_void_p), c_size_t, c_int32,
                                       c_void_p)
#: ``typedef apm_certificate *(*apm_local_certificate_selection_callback)(apm_stream *sender,
#: const char *target_host, apm_certificate *const *local_certificates, size_t local_len,
#: apm_certificate *remote_certificate, const char *const *acceptable_issuers, size_t issuers_len,
#: void *state);`` (the restype is c_size_t rather than c_void_p: ctypes callbacks cannot return
#: c_void_p; both are a pointer-sized integer)
SELECTION_CALLBACK = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_char_p, POINTER(c_void_p), c_size_t, c_void_p,
                                      POINTER(c_char_p), c_size_t, c_void_p)
#: ``typedef int32_t (*apm_credential_lookup_callback)(const char *user, const char *domain,
#: char *password, size_t password_size, uint8_t *nt_hash, void *state);``
LOOKUP_CALLBACK = ctypes.CFUNCTYPE(c_int32, c_char_p, c_char_p, POINTER(c_char), c_size_t, POINTER(c_uint8),
                                   c_void_p)
#: ``typedef apm_status (*apm_custom_complete_fn)(uint64_t token, apm_status status, size_t bytes);``
CUSTOM_COMPLETE = ctypes.CFUNCTYPE(c_int32, c_uint64, c_int32, c_size_t)
#: ``apm_stream_vtable.begin_read``: (ctx, buffer, count, complete, token) -> apm_status
CUSTOM_BEGIN_READ = ctypes.CFUNCTYPE(c_int32, c_void_p, c_void_p, c_size_t, CUSTOM_COMPLETE, c_uint64)
#: ``apm_stream_vtable.begin_write``: (ctx, const buffer, count, complete, token) -> apm_status
CUSTOM_BEGIN_WRITE = ctypes.CFUNCTYPE(c_int32, c_void_p, c_void_p, c_size_t, CUSTOM_COMPLETE, c_uint64)
#: ``apm_stream_vtable.close``: (ctx)
CUSTOM_CLOSE = ctypes.CFUNCTYPE(None, c_void_p)


class StreamVtable(Structure):
    """``apm_stream_vtable``: the functions of a stream defined by the caller."""

    _fields_ = [("begin_read", CUSTOM_BEGIN_READ), ("begin_write", CUSTOM_BEGIN_WRITE),
                ("close", CUSTOM_CLOSE)]


_status = c_int32
_handle = c_void_p  # apm_socket *, apm_stream *, apm_async_result * (opaque)
_out_handle = POINTER(c_void_p)
_i32p = POINTER(c_int32)
_sizep = POINTER(c_size_t)
_bytes_in = POINTER(c_uint8)  # const uint8_t *
_bytes_out = POINTER(c_uint8)  # uint8_t *
_text_out = POINTER(c_char)  # char * (a caller buffer the library fills)
_cb = ASYNC_CALLBACK
_progress = PROGRESS_CALLBACK
_i64p = POINTER(c_int64)
_names_in = POINTER(c_char_p)  # const char *const *

#: name -> (restype, argtypes), in the order of the C API specification.
PROTOTYPES = {
    # errors and version
    "apm_last_error_message": (_status, [_text_out, c_size_t, _sizep]),
    "apm_last_error_inner_message": (_status, [_text_out, c_size_t, _sizep]),
    "apm_last_error_status": (c_int32, []),
    "apm_last_error_socket_error": (c_int32, []),
    "apm_last_error_errno": (c_int32, []),
    "apm_last_error_web_status": (c_int32, []),
    "apm_last_error_http_status": (c_int32, []),
    "apm_last_error_clear": (_status, []),
    "apm_status_name": (c_char_p, [_status]),
    "apm_version": (c_char_p, []),
    "apm_version_number": (c_uint32, []),
    # runtime
    "apm_runtime_configure": (_status, [c_int32, c_int32]),
    "apm_runtime_shutdown": (_status, []),
    # IAsyncResult
    "apm_async_result_is_completed": (_status, [_handle, _i32p]),
    "apm_async_result_completed_synchronously": (_status, [_handle, _i32p]),
    "apm_async_result_wait": (_status, [_handle, c_int32, _i32p]),
    "apm_async_result_state": (_status, [_handle, POINTER(c_void_p)]),
    "apm_async_result_cancel": (_status, [_handle]),
    # Socket
    "apm_socket_create": (_status, [c_int32, c_int32, c_int32, _out_handle]),
    "apm_socket_bind": (_status, [_handle, c_char_p, c_int32]),
    "apm_socket_listen": (_status, [_handle, c_int32]),
    "apm_socket_accept": (_status, [_handle, _out_handle]),
    "apm_socket_begin_accept": (_status, [_handle, _cb, c_void_p, _out_handle]),
    "apm_socket_end_accept": (_status, [_handle, _handle, _out_handle]),
    "apm_socket_connect": (_status, [_handle, c_char_p, c_int32]),
    "apm_socket_begin_connect": (_status, [_handle, c_char_p, c_int32, _cb, c_void_p, _out_handle]),
    "apm_socket_end_connect": (_status, [_handle, _handle]),
    "apm_socket_send": (_status, [_handle, _bytes_in, c_size_t, c_size_t, c_size_t, _sizep]),
    "apm_socket_begin_send": (
        _status, [_handle, _bytes_in, c_size_t, c_size_t, c_size_t, _cb, c_void_p, _out_handle]),
    "apm_socket_end_send": (_status, [_handle, _handle, _sizep]),
    "apm_socket_receive": (_status, [_handle, _bytes_out, c_size_t, c_size_t, c_size_t, _sizep]),
    "apm_socket_begin_receive": (
        _status, [_handle, _bytes_out, c_size_t, c_size_t, c_size_t, _cb, c_void_p, _out_handle]),
    "apm_socket_end_receive": (_status, [_handle, _handle, _sizep]),
    "apm_socket_shutdown": (_status, [_handle, c_int32]),
    "apm_socket_close": (_status, [_handle]),
    "apm_socket_get_local_endpoint": (_status, [_handle, _text_out, c_size_t, _i32p]),
    "apm_socket_get_remote_endpoint": (_status, [_handle, _text_out, c_size_t, _i32p]),
    "apm_socket_get_connected": (_status, [_handle, _i32p]),
    "apm_socket_get_available": (_status, [_handle, _i32p]),
    "apm_socket_set_no_delay": (_status, [_handle, c_int32]),
    "apm_socket_get_no_delay": (_status, [_handle, _i32p]),
    "apm_socket_set_send_buffer_size": (_status, [_handle, c_int32]),
    "apm_socket_get_send_buffer_size": (_status, [_handle, _i32p]),
    "apm_socket_set_receive_buffer_size": (_status, [_handle, c_int32]),
    "apm_socket_get_receive_buffer_size": (_status, [_handle, _i32p]),
    "apm_socket_set_send_timeout": (_status, [_handle, c_int32]),
    "apm_socket_get_send_timeout": (_status, [_handle, _i32p]),
    "apm_socket_set_receive_timeout": (_status, [_handle, c_int32]),
    "apm_socket_get_receive_timeout": (_status, [_handle, _i32p]),
    "apm_socket_set_linger": (_status, [_handle, c_int32, c_int32]),
    "apm_socket_get_linger": (_status, [_handle, _i32p, _i32p]),
    # send file
    "apm_socket_send_file": (
        _status, [_handle, c_char_p, _bytes_in, c_size_t, _bytes_in, c_size_t, c_int32]),
    "apm_socket_begin_send_file": (
        _status, [_handle, c_char_p, _bytes_in, c_size_t, _bytes_in, c_size_t, c_int32,
                  _cb, c_void_p, _out_handle]),
    "apm_socket_begin_send_file_with_progress": (
        _status, [_handle, c_char_p, _bytes_in, c_size_t, _bytes_in, c_size_t, c_int32,
                  _progress, _cb, c_void_p, _out_handle]),
    "apm_socket_end_send_file": (_status, [_handle, _handle]),
    # NetworkStream and the stream functions
    "apm_network_stream_create": (_status, [_handle, c_int32, _out_handle]),
    "apm_network_stream_create_with_access": (_status, [_handle, c_int32, c_int32, _out_handle]),
    "apm_stream_begin_write": (
        _status, [_handle, _bytes_in, c_size_t, c_size_t, c_size_t, _cb, c_void_p, _out_handle]),
    "apm_stream_end_write": (_status, [_handle, _handle]),
    "apm_stream_begin_read": (
        _status, [_handle, _bytes_out, c_size_t, c_size_t, c_size_t, _cb, c_void_p, _out_handle]),
    "apm_stream_end_read": (_status, [_handle, _handle, _sizep]),
    "apm_stream_write": (_status, [_handle, _bytes_in, c_size_t, c_size_t, c_size_t]),
    "apm_stream_read": (_status, [_handle, _bytes_out, c_size_t, c_size_t, c_size_t, _sizep]),
    "apm_stream_can_read": (_status, [_handle, _i32p]),
    "apm_stream_can_write": (_status, [_handle, _i32p]),
    "apm_stream_close": (_status, [_handle]),
    # certificates
    "apm_certificate_load_pem_file": (_status, [c_char_p, c_char_p, _out_handle]),
    "apm_certificate_load_pem": (_status, [_bytes_in, c_size_t, _bytes_in, c_size_t, _out_handle]),
    "apm_certificate_load_der": (_status, [_bytes_in, c_size_t, _out_handle]),
    "apm_certificate_load_pkcs12_file": (_status, [c_char_p, c_char_p, _out_handle]),
    "apm_certificate_close": (_status, [_handle]),
    "apm_certificate_get_subject": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_certificate_get_issuer": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_certificate_get_thumbprint": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_certificate_get_raw_data": (_status, [_handle, _bytes_out, c_size_t, _sizep]),
    "apm_certificate_has_private_key": (_status, [_handle, _i32p]),
    "apm_certificate_get_validity": (_status, [_handle, _i64p, _i64p]),
    # streams defined by the caller
    "apm_stream_create_custom": (_status, [POINTER(StreamVtable), c_void_p, _out_handle]),
    "apm_custom_stream_complete": (_status, [c_uint64, _status, c_size_t]),
    # SslStream
    "apm_credential_create": (_status, [c_char_p, c_char_p, c_char_p, _out_handle]),
    "apm_credential_create_default": (_status, [_out_handle]),
    "apm_credential_create_from_file": (_status, [c_char_p, _out_handle]),
    "apm_credential_create_lookup": (_status, [LOOKUP_CALLBACK, c_void_p, _out_handle]),
    "apm_credential_get_user_name": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_credential_get_domain": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_credential_close": (_status, [_handle]),
    "apm_negotiate_stream_create": (_status, [_handle, c_int32, _out_handle]),
    "apm_negotiate_stream_authenticate_as_client": (
        _status, [_handle, _handle, c_char_p, _bytes_in, c_size_t, c_int32, c_int32]),
    "apm_negotiate_stream_begin_authenticate_as_client": (
        _status, [_handle, _handle, c_char_p, _bytes_in, c_size_t, c_int32, c_int32, _cb, c_void_p, _out_handle]),
    "apm_negotiate_stream_end_authenticate_as_client": (_status, [_handle, _handle]),
    "apm_negotiate_stream_authenticate_as_server": (
        _status, [_handle, _handle, c_int32, _bytes_in, c_size_t, _names_in, c_size_t, c_int32, c_int32]),
    "apm_negotiate_stream_begin_authenticate_as_server": (
        _status, [_handle, _handle, c_int32, _bytes_in, c_size_t, _names_in, c_size_t, c_int32, c_int32, _cb,
                  c_void_p, _out_handle]),
    "apm_negotiate_stream_end_authenticate_as_server": (_status, [_handle, _handle]),
    "apm_negotiate_stream_is_authenticated": (_status, [_handle, _i32p]),
    "apm_negotiate_stream_is_server": (_status, [_handle, _i32p]),
    "apm_negotiate_stream_is_encrypted": (_status, [_handle, _i32p]),
    "apm_negotiate_stream_is_signed": (_status, [_handle, _i32p]),
    "apm_negotiate_stream_is_mutually_authenticated": (_status, [_handle, _i32p]),
    "apm_negotiate_stream_get_impersonation_level": (_status, [_handle, _i32p]),
    "apm_negotiate_stream_get_remote_identity_name": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_negotiate_stream_get_remote_identity_authentication_type": (
        _status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_ssl_stream_create": (_status, [_handle, c_int32, _out_handle]),
    "apm_ssl_stream_set_validation_callback": (_status, [_handle, VALIDATION_CALLBACK, c_void_p]),
    "apm_ssl_stream_set_selection_callback": (_status, [_handle, SELECTION_CALLBACK, c_void_p]),
    "apm_ssl_stream_set_trusted_ca_file": (_status, [_handle, c_char_p]),
    "apm_ssl_stream_set_application_protocols": (_status, [_handle, _names_in, c_size_t]),
    "apm_ssl_stream_set_allow_tls_resume": (_status, [_handle, c_int32]),
    "apm_ssl_stream_authenticate_as_client": (_status, [_handle, c_char_p, _handle, c_int32, c_int32]),
    "apm_ssl_stream_begin_authenticate_as_client": (
        _status, [_handle, c_char_p, _handle, c_int32, c_int32, _cb, c_void_p, _out_handle]),
    "apm_ssl_stream_end_authenticate_as_client": (_status, [_handle, _handle]),
    "apm_ssl_stream_authenticate_as_server": (_status, [_handle, _handle, c_int32, c_int32, c_int32]),
    "apm_ssl_stream_begin_authenticate_as_server": (
        _status, [_handle, _handle, c_int32, c_int32, c_int32, _cb, c_void_p, _out_handle]),
    "apm_ssl_stream_end_authenticate_as_server": (_status, [_handle, _handle]),
    "apm_ssl_stream_shutdown": (_status, [_handle]),
    "apm_ssl_stream_begin_shutdown": (_status, [_handle, _cb, c_void_p, _out_handle]),
    "apm_ssl_stream_end_shutdown": (_status, [_handle, _handle]),
    "apm_ssl_stream_is_authenticated": (_status, [_handle, _i32p]),
    "apm_ssl_stream_is_server": (_status, [_handle, _i32p]),
    "apm_ssl_stream_is_encrypted": (_status, [_handle, _i32p]),
    "apm_ssl_stream_is_signed": (_status, [_handle, _i32p]),
    "apm_ssl_stream_is_mutually_authenticated": (_status, [_handle, _i32p]),
    "apm_ssl_stream_is_resumed": (_status, [_handle, _i32p]),
    "apm_ssl_stream_get_ssl_protocol": (_status, [_handle, _i32p]),
    "apm_ssl_stream_get_cipher_suite": (_status, [_handle, _i32p]),
    "apm_ssl_stream_get_cipher_suite_name": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_ssl_stream_get_application_protocol": (_status, [_handle, _bytes_out, c_size_t, _sizep]),
    "apm_ssl_stream_get_target_host_name": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_ssl_stream_get_remote_certificate": (_status, [_handle, _out_handle]),
    "apm_ssl_stream_get_local_certificate": (_status, [_handle, _out_handle]),
    "apm_ssl_stream_get_transport_context": (_status, [_handle, _out_handle]),
    # NegotiateAuthentication
    "apm_negotiate_authentication_create_client": (
        _status, [c_char_p, _handle, c_char_p, _handle, c_int32, c_int32, c_int32, c_int32, _out_handle]),
    "apm_negotiate_authentication_create_server": (
        _status, [c_char_p, _handle, _handle, c_int32, c_int32, _names_in, c_size_t, c_int32, c_int32, _out_handle]),
    "apm_negotiate_authentication_get_outgoing_blob": (
        _status, [_handle, _bytes_in, c_size_t, _bytes_out, c_size_t, _sizep, _i32p]),
    "apm_negotiate_authentication_get_last_output": (_status, [_handle, _bytes_out, c_size_t, _sizep]),
    "apm_negotiate_authentication_wrap": (
        _status, [_handle, _bytes_in, c_size_t, c_int32, _bytes_out, c_size_t, _sizep, _i32p, _i32p]),
    "apm_negotiate_authentication_unwrap": (
        _status, [_handle, _bytes_in, c_size_t, _bytes_out, c_size_t, _sizep, _i32p, _i32p]),
    "apm_negotiate_authentication_compute_integrity_check": (
        _status, [_handle, _bytes_in, c_size_t, _bytes_out, c_size_t, _sizep]),
    "apm_negotiate_authentication_verify_integrity_check": (
        _status, [_handle, _bytes_in, c_size_t, _bytes_in, c_size_t, _i32p]),
    "apm_negotiate_authentication_is_authenticated": (_status, [_handle, _i32p]),
    "apm_negotiate_authentication_is_server": (_status, [_handle, _i32p]),
    "apm_negotiate_authentication_is_signed": (_status, [_handle, _i32p]),
    "apm_negotiate_authentication_is_encrypted": (_status, [_handle, _i32p]),
    "apm_negotiate_authentication_is_mutually_authenticated": (_status, [_handle, _i32p]),
    "apm_negotiate_authentication_get_protection_level": (_status, [_handle, _i32p]),
    "apm_negotiate_authentication_get_impersonation_level": (_status, [_handle, _i32p]),
    "apm_negotiate_authentication_get_package": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_negotiate_authentication_get_target_name": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_negotiate_authentication_get_remote_identity_name": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_negotiate_authentication_get_remote_identity_authentication_type": (
        _status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_negotiate_authentication_close": (_status, [_handle]),
    # TransportContext
    "apm_transport_context_get_channel_binding": (
        _status, [_handle, c_int32, _bytes_out, c_size_t, _sizep]),
    "apm_transport_context_get_channel_binding_token": (
        _status, [_handle, c_int32, _bytes_out, c_size_t, _sizep]),
    "apm_transport_context_close": (_status, [_handle]),
    # HttpWebRequest, HttpWebResponse
    "apm_http_request_create": (_status, [c_char_p, _out_handle]),
    "apm_http_request_set_method": (_status, [_handle, c_char_p]),
    "apm_http_request_get_method": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_http_request_set_content_length": (_status, [_handle, c_int64]),
    "apm_http_request_get_content_length": (_status, [_handle, _i64p]),
    "apm_http_request_set_send_chunked": (_status, [_handle, c_int32]),
    "apm_http_request_get_send_chunked": (_status, [_handle, _i32p]),
    "apm_http_request_set_keep_alive": (_status, [_handle, c_int32]),
    "apm_http_request_get_keep_alive": (_status, [_handle, _i32p]),
    "apm_http_request_set_protocol_version": (_status, [_handle, c_int32, c_int32]),
    "apm_http_request_get_protocol_version": (_status, [_handle, _i32p, _i32p]),
    "apm_http_request_set_timeout": (_status, [_handle, c_int32]),
    "apm_http_request_get_timeout": (_status, [_handle, _i32p]),
    "apm_http_request_set_read_write_timeout": (_status, [_handle, c_int32]),
    "apm_http_request_get_read_write_timeout": (_status, [_handle, _i32p]),
    "apm_http_request_set_allow_auto_redirect": (_status, [_handle, c_int32]),
    "apm_http_request_get_allow_auto_redirect": (_status, [_handle, _i32p]),
    "apm_http_request_set_maximum_automatic_redirections": (_status, [_handle, c_int32]),
    "apm_http_request_get_maximum_automatic_redirections": (_status, [_handle, _i32p]),
    "apm_http_request_set_automatic_decompression": (_status, [_handle, c_int32]),
    "apm_http_request_get_automatic_decompression": (_status, [_handle, _i32p]),
    "apm_http_request_set_expect_100_continue": (_status, [_handle, c_int32]),
    "apm_http_request_get_expect_100_continue": (_status, [_handle, _i32p]),
    "apm_http_request_set_maximum_response_headers_length": (_status, [_handle, c_int32]),
    "apm_http_request_get_maximum_response_headers_length": (_status, [_handle, _i32p]),
    "apm_http_request_set_header_property": (_status, [_handle, c_char_p, c_char_p]),
    "apm_http_request_set_header": (_status, [_handle, c_char_p, c_char_p]),
    "apm_http_request_add_header": (_status, [_handle, c_char_p, c_char_p]),
    "apm_http_request_get_header": (_status, [_handle, c_char_p, _text_out, c_size_t, _sizep, _i32p]),
    "apm_http_request_set_credentials": (_status, [_handle, c_char_p, c_char_p]),
    "apm_http_request_set_credential": (_status, [_handle, _handle]),
    "apm_http_request_set_use_default_credentials": (_status, [_handle, c_int32]),
    "apm_http_request_get_use_default_credentials": (_status, [_handle, _i32p]),
    "apm_http_request_set_pre_authenticate": (_status, [_handle, c_int32]),
    "apm_http_request_get_pre_authenticate": (_status, [_handle, _i32p]),
    "apm_http_request_set_proxy": (_status, [_handle, c_char_p]),
    "apm_http_request_use_default_proxy": (_status, [_handle]),
    "apm_http_request_set_proxy_credentials": (_status, [_handle, c_char_p, c_char_p]),
    "apm_http_request_get_proxy": (_status, [_handle, _text_out, c_size_t, _sizep, _i32p]),
    "apm_http_request_set_trusted_ca_file": (_status, [_handle, c_char_p]),
    "apm_http_request_set_validation_callback": (_status, [_handle, VALIDATION_CALLBACK, c_void_p]),
    "apm_http_request_set_client_certificate": (_status, [_handle, _handle]),
    "apm_http_request_set_connection_limit": (_status, [_handle, c_int32]),
    "apm_http_request_get_connection_limit": (_status, [_handle, _i32p]),
    "apm_http_request_set_max_idle_time": (_status, [_handle, c_int32]),
    "apm_http_request_get_request_uri": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_http_request_get_address": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_http_request_begin_get_request_stream": (_status, [_handle, _cb, c_void_p, _out_handle]),
    "apm_http_request_end_get_request_stream": (
        _status, [_handle, _handle, _out_handle, _out_handle]),
    "apm_http_request_get_request_stream": (
        _status, [_handle, _out_handle, _out_handle]),
    "apm_http_request_begin_get_response": (_status, [_handle, _cb, c_void_p, _out_handle]),
    "apm_http_request_end_get_response": (_status, [_handle, _handle, _out_handle]),
    "apm_http_request_get_response": (_status, [_handle, _out_handle]),
    "apm_http_request_abort": (_status, [_handle]),
    "apm_http_request_close": (_status, [_handle]),
    "apm_http_response_get_status_code": (_status, [_handle, _i32p]),
    "apm_http_response_get_status_description": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_http_response_get_protocol_version": (_status, [_handle, _i32p, _i32p]),
    "apm_http_response_get_header": (_status, [_handle, c_char_p, _text_out, c_size_t, _sizep, _i32p]),
    "apm_http_response_get_header_count": (_status, [_handle, _sizep]),
    "apm_http_response_get_header_at": (
        _status, [_handle, c_size_t, _text_out, c_size_t, _sizep, _text_out, c_size_t, _sizep]),
    "apm_http_response_get_content_length": (_status, [_handle, _i64p]),
    "apm_http_response_get_content_type": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_http_response_get_response_uri": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_http_response_get_method": (_status, [_handle, _text_out, c_size_t, _sizep]),
    "apm_http_response_get_response_stream": (_status, [_handle, _out_handle]),
    "apm_http_response_from_last_error": (_status, [_out_handle]),
    "apm_http_response_close": (_status, [_handle]),
}

_LIBRARY_NAMES = ("libapmnet.so", "libapmnet.so.0")


def find_checkout_root(start: Optional[str] = None) -> Optional[pathlib.Path]:
    """The apmnet repository root above ``start`` (this package's folder), or None when installed."""
    here = pathlib.Path(start or __file__).resolve().parent
    for folder in (here, *here.parents):
        if (folder / "Cargo.toml").is_file() and (folder / "bindings" / "python").is_dir():
            return folder
    return None


def _candidates() -> Iterator[str]:
    """Where to look for the shared library, in order (see the package README)."""
    env = os.environ.get("APMNET_LIBRARY")
    if env:
        yield env
        return
    package_dir = pathlib.Path(__file__).resolve().parent
    for name in _LIBRARY_NAMES:
        yield str(package_dir / name)
    root = find_checkout_root()
    if root is not None:
        for profile in ("release", "debug"):
            yield str(root / "target" / profile / "libapmnet.so")
    yield "libapmnet.so.0"  # the system's, through the dynamic loader's search path


def _load() -> Tuple[ctypes.CDLL, str]:
    tried = []
    for candidate in _candidates():
        is_path = os.sep in candidate
        if is_path and not os.path.exists(candidate):
            tried.append(candidate + " (missing)")
            continue
        try:
            return ctypes.CDLL(candidate), candidate
        except OSError as error:
            tried.append(f"{candidate} ({error})")
    raise ImportError(
        "apmnet: cannot load the apmnet shared library; set APMNET_LIBRARY to its path. Tried: "
        + "; ".join(tried))


def _missing_function(name: str) -> Callable[..., NoReturn]:
    def missing(*_args: Any) -> NoReturn:
        raise NotImplementedError(f"{name} is not exported by {library_path}")

    missing.__name__ = name
    return missing


class _Library:
    """The declared functions as attributes: ``lib.apm_socket_create(...)``."""

    def __init__(self, cdll: ctypes.CDLL) -> None:
        self.cdll = cdll
        self.missing: List[str] = []
        for name, (restype, argtypes) in PROTOTYPES.items():
            try:
                function = getattr(cdll, name)
            except AttributeError:
                self.missing.append(name)
                setattr(self, name, _missing_function(name))
                continue
            function.restype = restype
            function.argtypes = argtypes
            setattr(self, name, function)

    def __getattr__(self, name: str) -> Any:  # for type checkers: the functions set above
        raise AttributeError(name)


_cdll, library_path = _load()
lib = _Library(_cdll)
#: Set by the atexit hook once the runtime was shut down for the process exit.
finalizing = False


def _read_text(function: Any) -> str:
    size = c_size_t(0)
    buffer = ctypes.create_string_buffer(256)
    if function(buffer, len(buffer), ctypes.byref(size)) != 0:
        return ""
    if size.value >= len(buffer):
        buffer = ctypes.create_string_buffer(size.value + 1)
        if function(buffer, len(buffer), ctypes.byref(size)) != 0:
            return ""
    return buffer.value.decode("utf-8", "replace")


def status_name(status: int) -> str:
    name = lib.apm_status_name(status)
    return name.decode("ascii") if name else "APM_UNKNOWN"


def last_error(status: int) -> ApmError:
    """The exception for ``status``, built from the calling thread's error record.

    Must run on the thread that made the failing call, before any other library call.
    """
    message = _read_text(lib.apm_last_error_message)
    inner = _read_text(lib.apm_last_error_inner_message)
    details = dict(
        inner_message=inner,
        socket_error_code=lib.apm_last_error_socket_error(),
        errno=lib.apm_last_error_errno(),
        web_status=lib.apm_last_error_web_status(),
        http_status=lib.apm_last_error_http_status(),
    )
    try:
        status = Status(status)
        kind = EXCEPTION_FOR_STATUS.get(status, ApmError)
    except ValueError:
        kind = ApmError
    if not message:
        message = f"{status_name(status)} ({int(status)})"
    error = kind(message, status, **details)
    if status == Status.WEB and details["http_status"]:
        # WebException.Response: the record carries the response of a ProtocolError.
        response = c_void_p()
        if lib.apm_http_response_from_last_error(ctypes.byref(response)) == 0 and response.value:
            from .http import HttpWebResponse  # the module imports this one
            setattr(error, "response", HttpWebResponse(response.value))
    if status == Status.IO and (details["socket_error_code"] or details["errno"]):
        # .NET: IOException("Unable to write data to the transport connection: ...", SocketException)
        error.__cause__ = SocketException(inner or message, Status.SOCKET, **details)
        error.__suppress_context__ = True
    return error


def check(status: int) -> None:
    """Raise the exception for a failed call; call this right after the call, on the same thread."""
    if status != 0:
        raise last_error(status)


def raise_last_error(status: int) -> NoReturn:
    raise last_error(status)
