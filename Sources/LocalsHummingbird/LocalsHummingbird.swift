#if Hummingbird
// Built by the Hummingbird integration (in progress on a branch).
#endif
