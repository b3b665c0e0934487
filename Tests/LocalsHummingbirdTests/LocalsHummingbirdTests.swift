#if Hummingbird
// Tests of LocalsHummingbird (in progress on a branch).
#endif
