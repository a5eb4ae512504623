/* The drop reasons' names. */
#include "drops.h"

#define X_NAME(id, name) name,
const char *const drop_names[DROP_COUNT] = {DROP_REASONS(X_NAME)};
#undef X_NAME
