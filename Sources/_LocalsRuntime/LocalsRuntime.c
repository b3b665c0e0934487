// The declarations live in include/_LocalsRuntime.h; this file defines the one variable of its own.
#include "_LocalsRuntime.h"

int locals_runtime_testing_fold_task_ids = 0;
