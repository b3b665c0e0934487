#if NIO
// Built by the NIO integration (in progress on a branch).
#endif
