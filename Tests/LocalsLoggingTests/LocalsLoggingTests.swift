#if Logging
// Tests of LocalsLogging (in progress on a branch).
#endif
