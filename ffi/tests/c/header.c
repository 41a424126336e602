#include <pith.h>

int pith_header_compiles_as_c(void) { return PITH_OK; }
