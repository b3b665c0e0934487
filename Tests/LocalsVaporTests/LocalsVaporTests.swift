#if Vapor
// Tests of LocalsVapor (in progress on a branch).
#endif
