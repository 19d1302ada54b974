// OpenSSL's libcrypto, for SHA-256 (the digest config.json records of an --init file).
#include <openssl/evp.h>
