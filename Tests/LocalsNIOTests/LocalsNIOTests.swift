#if NIO
// Tests of LocalsNIO (in progress on a branch).
#endif
