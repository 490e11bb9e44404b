// The OpenSSL headers the tests' software signer uses (ECDSA P-256 over SHA-256).
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>
