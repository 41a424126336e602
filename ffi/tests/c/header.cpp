#include <pith.h>

int pith_header_compiles_as_cpp() { return PITH_OK; }
