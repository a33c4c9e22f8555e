// STUB (being written): config validation and map conversion.
#include "sim/core/config.h"
