/* libFuzzer target: the YAML configuration loader on arbitrary bytes. */
#include "auto-config.h"

#include "config.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_diag d = { 0 };
	struct config *cfg = config_load_buffer("fuzz.yml", "/etc", (const char *)data, size, &d);

	/* Either a config or at least one message, never both missing. */
	if (!cfg && d.n == 0)
		__builtin_trap();
	config_unref(cfg);
	cfg_diag_clear(&d);
	return 0;
}
