#ifndef ONEO_CURL_SHIM_H
#define ONEO_CURL_SHIM_H

#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed door
// per kind of value. Static inline, so the system-library target needs no C sources.

static inline CURLcode oneo_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode oneo_curl_set_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*oneo_curl_write_callback)(char *data, size_t size, size_t count, void *context);
typedef curl_socket_t (*oneo_curl_open_socket_callback)(void *context, curlsocktype purpose, struct curl_sockaddr *address);

static inline CURLcode oneo_curl_set_write(CURL *handle, oneo_curl_write_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
    return code != CURLE_OK ? code : curl_easy_setopt(handle, CURLOPT_WRITEDATA, context);
}

static inline CURLcode oneo_curl_set_open_socket(CURL *handle, oneo_curl_open_socket_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, callback);
    return code != CURLE_OK ? code : curl_easy_setopt(handle, CURLOPT_OPENSOCKETDATA, context);
}

static inline int oneo_curl_already_connected(void *context, curl_socket_t socket, curlsocktype purpose) {
    (void)context; (void)socket; (void)purpose;
    return CURL_SOCKOPT_ALREADY_CONNECTED;
}

/// The socket libcurl is handed is connected already (the broker connected it): no connect().
static inline CURLcode oneo_curl_set_already_connected(CURL *handle) {
    return curl_easy_setopt(handle, CURLOPT_SOCKOPTFUNCTION, oneo_curl_already_connected);
}

static inline CURLcode oneo_curl_response_code(CURL *handle, long *code) {
    return curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, code);
}

#endif
