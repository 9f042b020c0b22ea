/*
 * namerd_json: decodes one namerd Addr JSON document (the body of a
 * /api/1/resolve or /api/1/addr poll, or one watch=1 frame without its
 * '\n') into a struct namerd_answer.
 *
 * Ownership: the decoder never keeps a reference to its input; the answer
 * owns its endpoint array and cause string, and namerd_answer_clear frees
 * them.  No global state: any thread may call it (in practice each proxy's
 * namerd thread does).  It never logs; the caller logs err.  The only
 * outside lookup is if_nametoindex for a named IPv6 scope ("%eth0").
 *
 * Policy (the caller keeps its last good endpoint set whenever decoding
 * fails, so doubtful input is rejected whole rather than partly applied):
 *  - bound: addrs must be an array of {ip, port}; ip is an IPv4 or IPv6
 *    literal (Java's long IPv6 form included), never a hostname; port is a
 *    JSON integer 1..65535 (port 0 rejects the answer).  An IPv6 "%scope"
 *    suffix sets sin6_scope_id: a decimal number is taken as is, a name
 *    goes through if_nametoindex and an interface unknown here rejects the
 *    answer.  Duplicates are kept (the balancer dedups).
 *  - weight = addrs[i].meta.endpoint_addr_weight: a JSON number, or a
 *    string holding exactly one JSON number ("2", " 1.5E-3 "); absent or
 *    any other value means 1.0.  A negative, NaN or infinite weight
 *    rejects the answer; 0 (or -0) is 0 and takes the endpoint out.
 *  - Other meta (per address and top level) may be any JSON and is ignored.
 *  - failed: cause is an optional string (null = absent).  It is cut to
 *    NAMERD_CAUSE_MAX bytes with control characters turned into spaces, so
 *    that it fits on one log line.
 *  - Strict JSON (json-c's strict mode, UTF-8 checked), nesting at most
 *    NAMERD_JSON_DEPTH, at most NAMERD_JSON_MAX bytes and NAMERD_MAX_ADDRS
 *    addresses; only whitespace may follow the top-level object.
 *  - Cost: json-c's tree costs about 2 KiB per address, so a bound answer
 *    whose top-level addrs is an array is parsed in pieces, the rest of the
 *    document and then each address alone, and never held as one tree
 *    (100,000 addresses of 170 bytes, IPv6 with meta: about 0.5 s and 30 MiB
 *    rather than 300 MiB).  A piece, or a document that cannot be split,
 *    whose estimated tree exceeds NAMERD_JSON_BUDGET is refused before
 *    parsing (32 MiB of "{}," would be 8 GiB).
 */
#ifndef LTCP_NAMERD_JSON_H
#define LTCP_NAMERD_JSON_H

#include <stddef.h>

#include "balancer.h"

#define NAMERD_JSON_MAX    (32u << 20)  /* bytes of one document: 100,000 addresses of 335 */
#define NAMERD_JSON_DEPTH  64           /* nesting of arrays and objects */
#define NAMERD_JSON_BUDGET (256u << 20) /* json-c heap for one document, estimated */
#define NAMERD_MAX_ADDRS   100000       /* addresses in one bound answer */
#define NAMERD_CAUSE_MAX   1024         /* bytes kept of a failed cause */
#define NAMERD_ERRLEN      256          /* a comfortable size for err */

enum namerd_kind { NAMERD_BOUND, NAMERD_NEG, NAMERD_FAILED, NAMERD_PENDING };

struct namerd_answer {
	enum namerd_kind kind;
	struct endpoint_spec *eps; /* BOUND only; owned; NULL when n == 0 */
	size_t n;
	char *cause; /* FAILED only; owned; may be NULL */
};

/*
 * Decodes text[0..len) (need not be NUL-terminated).  Returns 0 and fills
 * *out, or returns -1 with a one-line reason in err (errlen bytes; err may
 * be NULL) and *out empty with kind NAMERD_PENDING ("no answer yet"), so a
 * caller that missed the error still keeps its endpoints.  Either way
 * namerd_answer_clear(out) is safe afterwards.
 */
int namerd_json_decode(const char *text, size_t len, struct namerd_answer *out, char *err,
		       size_t errlen);
void namerd_answer_clear(struct namerd_answer *a);

#endif
