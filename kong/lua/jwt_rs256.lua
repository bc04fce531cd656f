-- RS256 JWT decoding and verification for the local gateway, as Kong's jwt plugin does it
-- (kong/plugins/jwt/jwt_parser.lua), with OpenSSL's EVP_DigestVerify through LuaJIT's FFI:
-- nginx already links libcrypto, so its symbols resolve through ffi.C.
local ffi = require "ffi"
local cjson = require "cjson.safe"
local b64 = require "ngx.base64"

ffi.cdef [[
typedef struct bio_st BIO;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct engine_st ENGINE;
BIO *BIO_new_mem_buf(const void *buf, int len);
int BIO_free(BIO *a);
EVP_PKEY *PEM_read_bio_PUBKEY(BIO *bp, EVP_PKEY **x, void *cb, void *u);
void EVP_PKEY_free(EVP_PKEY *pkey);
EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
const EVP_MD *EVP_sha256(void);
int EVP_DigestVerifyInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type,
                         ENGINE *e, EVP_PKEY *pkey);
int EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sig, size_t siglen,
                     const unsigned char *tbs, size_t tbslen);
]]
local C = ffi.C

local _M = {}
local keys = {} -- PEM text -> EVP_PKEY*, parsed once per worker

local function public_key(pem)
  local pkey = keys[pem]
  if pkey == nil then
    local bio = C.BIO_new_mem_buf(pem, #pem)
    if bio == nil then return nil end
    pkey = C.PEM_read_bio_PUBKEY(bio, nil, nil, nil)
    C.BIO_free(bio)
    if pkey == nil then return nil end
    keys[pem] = ffi.gc(pkey, C.EVP_PKEY_free)
  end
  return keys[pem]
end

-- Verify an RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature over `data`.
function _M.verify(data, signature, pem)
  local pkey = public_key(pem)
  if not pkey then return false end
  local ctx = C.EVP_MD_CTX_new()
  if ctx == nil then return false end
  local ok = C.EVP_DigestVerifyInit(ctx, nil, C.EVP_sha256(), nil, pkey) == 1
      and C.EVP_DigestVerify(ctx, signature, #signature, data, #data) == 1
  C.EVP_MD_CTX_free(ctx)
  return ok
end

local decode_part = b64.decode_base64url -- nil when not base64url

-- Split and decode a compact JWT; nil and Kong's "Bad token" reason when malformed.
function _M.decode(token)
  local h64, c64, s64 = token:match("^([^.]+)%.([^.]+)%.([^.]*)$")
  if not h64 then return nil, "Bad token; invalid JWT" end
  local header = cjson.decode(decode_part(h64) or "")
  local claims = cjson.decode(decode_part(c64) or "")
  local signature = decode_part(s64)
  if type(header) ~= "table" or type(claims) ~= "table" or not signature then
    return nil, "Bad token; invalid JSON"
  end
  if header.typ ~= nil and (type(header.typ) ~= "string" or header.typ:upper() ~= "JWT") then
    return nil, "Bad token; invalid typ"
  end
  return { header = header, claims = claims, signature = signature, signed = h64 .. "." .. c64 }
end

-- Kong's claims_to_verify = [exp]: the claim must be a number and still in the future.
function _M.check_exp(claims)
  local exp = claims.exp
  if type(exp) ~= "number" then return "exp must be a number" end
  if exp <= ngx.time() then return "token expired" end
  return nil
end

return _M
