/* libFuzzer target: the control API's request parser (path and JSON body).
 * The input is "P" or "D" (PUT or DELETE), the path after /api/v1/proxies/,
 * a newline, then the body. */
#include "auto-config.h"

#include "control.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = size ? memchr(data, '\n', size) : NULL;
	struct control_request req;
	const char *why = NULL;
	char *path;
	size_t plen;
	int rc;

	if (!nl)
		return 0;
	plen = (size_t)(nl - (const char *)data);
	path = strndup((const char *)data + 1, plen ? plen - 1 : 0);
	if (!path)
		return 0;
	rc = control_parse(size && data[0] == 'P', path, nl + 1, size - plen - 1, &req, &why);
	free(path);
	/* A failure says why; a PUT sets a field, and a weight is finite and not negative. */
	if (rc < 0 && (!why || !*why))
		__builtin_trap();
	if (rc == 0 && req.put && !req.o.has_weight && !req.o.has_drain)
		__builtin_trap();
	if (rc == 0 && req.o.has_weight && (!isfinite(req.o.weight) || req.o.weight < 0))
		__builtin_trap();
	return 0;
}
