// Package device is a virtual Apple device (iPhone, iPad or Mac) that
// enrolls in an MDM server and answers its commands, speaking only Apple's
// protocol over HTTP: it downloads and installs a configuration profile,
// gets its identity by SCEP, checks in (Authenticate, TokenUpdate, CheckOut)
// and runs the command loop ("connect"), signing every message with
// Mdm-Signature when the profile asks for it.
//
// Its only contract is that protocol, so it can test any MDM server, not
// just mockmdm: it reaches the server through a one-method Doer (an
// *http.Client, an in-process handler adapter, a TLS client that presents
// the device identity, a fault injector) and imports nothing of the server
// side.
//
// A Device is deterministic from its seed (WithSeed): UDID, serial number,
// EnrollmentID, push token, PushMagic, IMEI and MAC addresses derive from
// it, so a test that names a seed sees the same device every run. Keys are
// random.
//
// Commands are answered by handlers kept in a registry keyed by RequestType
// (see Handle); the built-in ones cover DeviceInformation, SecurityInfo,
// ProfileList, InstallProfile, RemoveProfile, CertificateList,
// Restrictions (the installed restrictions payloads combined, most
// restrictive value kept; restrictions.go), ClearRestrictionsPassword,
// InstalledApplicationList, ManagedApplicationList, InstallApplication
// (with a Configuration and Attributes), ManagedApplicationConfiguration,
// ManagedApplicationAttributes, ManagedApplicationFeedback (appconfig.go;
// SetAppFeedback plays the app), InstallMedia, ManagedMediaList,
// RemoveMedia (books; media.go),
// RemoveApplication, DeviceLock, EraseDevice (the device really resets),
// RestartDevice, ShutDownDevice, ClearPasscode (checked against the
// UnlockToken it sent in TokenUpdate), Settings (DeviceName,
// ApplicationConfiguration, ApplicationAttributes), AvailableOSUpdates,
// ScheduleOSUpdate, OSUpdateStatus and ScheduleOSUpdateScan (an install
// restarts the device on the new OS; osupdate.go),
// ActivationLockBypassCode and ClearActivationLockBypassCode (a code per
// setup or erase, for 15 days; see activationlock.go), EnableLostMode,
// DisableLostMode, DeviceLocation and PlayLostModeSound (lostmode.go),
// InstallProvisioningProfile, ProvisioningProfileList and
// RemoveProvisioningProfile (provisioning.go),
// ValidateApplications, RefreshCellularPlans, AccountConfiguration
// (accountconfig.go),
// SetRecoveryLock, VerifyRecoveryLock, EnableRemoteDesktop and
// DisableRemoteDesktop on a Mac, the firmware password commands refused
// (a virtual Mac is Apple silicon; macos.go), UserList, LogOutUser and
// DeleteUser (users.go),
// DeviceConfigured and DeclarativeManagement, and everything else gets
// the error devices answer an unknown command with (MCMDMErrorDomain 12021,
// “RequestType” is not a valid request type.);
// docs/virtual-devices.md lists them for testers. Before a handler runs, the device applies
// the rules Apple's command schema states for its OS: the command must exist
// on that OS version, be allowed under User Enrollment, be allowed on an
// unsupervised device, and be covered by the profile's AccessRights.
// Results are pruned by the same schema, so a key that iOS never sends is
// never sent.
//
// A Shared iPad's users and a Mac's users log in (LogIn, LogInMobileUser)
// and answer on channels of their own (ConnectUser; users.go); the
// DeclarativeManagement command makes a channel sync its declarations and
// report status (declarative.go); GetToken asks for a com.apple.maid or
// watch-pairing token.
//
// A tester sets behaviours per device: NotNow a number of times
// (SetNotNow), while "locked" (SetLocked), a delay before answering
// (DelayAck), a forced error chain (FailWith), no network (SetOffline), a
// new push token (RotatePushToken), and a silent unenroll
// (UnenrollSilently).
//
// All mutable state of a device (keychain, installed profiles, enrollment,
// managed apps) lives in one struct guarded by one lock; Save and Load
// keep it in a file, so a QA script can come back to the same device, and
// package device/fleet runs thousands of devices at once.
package device
