#if Vapor
// Built by the Vapor integration (in progress on a branch).
#endif
