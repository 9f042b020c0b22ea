/*
 * libFuzzer target for the namerd Addr JSON decoder.  Any input must decode
 * or fail cleanly: no crash, leak or undefined behaviour, and the answer
 * must keep the decoder's promises.  Seeds: tests/fuzz/corpus/namerd-json/.
 */
#include "auto-config.h"

#include "namerd_json.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct namerd_answer a;
	char err[NAMERD_ERRLEN];
	int rc = namerd_json_decode((const char *)data, size, &a, err, sizeof(err));

	if (rc == 0) {
		if (a.kind != NAMERD_BOUND && (a.n != 0 || a.eps))
			__builtin_trap();
		if (a.kind != NAMERD_FAILED && a.cause)
			__builtin_trap();
		if (a.n > NAMERD_MAX_ADDRS || (a.n > 0) != (a.eps != NULL))
			__builtin_trap();
		for (size_t i = 0; i < a.n; i++) {
			double w = a.eps[i].weight;

			if (!isfinite(w) || w < 0 || netaddr_port(&a.eps[i].addr) == 0)
				__builtin_trap();
		}
		if (a.cause && (strlen(a.cause) > NAMERD_CAUSE_MAX || strchr(a.cause, '\n')))
			__builtin_trap();
	} else if (rc != -1 || err[0] == '\0' || strchr(err, '\n') || a.kind != NAMERD_PENDING ||
		   a.eps || a.n || a.cause) {
		__builtin_trap();
	}
	namerd_answer_clear(&a);
	return 0;
}
