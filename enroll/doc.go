// Package enroll holds the enrollment programs and their rules: the mock
// organisation directory (identity provider), enrollment type profiles and
// the user's choice in the Company Portal, ownership, enrollment
// restrictions, and the enrollment tickets that carry what a program
// decided from the profile it serves to the Authenticate that follows.
//
// A program never creates an enrollment itself: it issues a ticket and an
// enrollment profile whose CheckInURL names the ticket; the check-in service
// asks Admit at Authenticate, which copies the ticket's decision onto the
// new enrollment. A refused sign-in or choice therefore leaves nothing
// half-created behind.
package enroll
