// Code generated from Apple's device-management schema; DO NOT EDIT.
//
// Source: apple/device-management other/skipkeys.yaml (release for iOS 18.1 /
// macOS 15.1), SHA-256 8d693c6f2d5af67d21c095d551882d2d6845ceb583a8e64327cda94403df4f09, copied from the project's
// shared/apple-schema snapshot: the "key" of every payloadkeys entry, in file
// order. TestSkipKeysMatchSchema checks the table against mdm/schema.

package ade

// skipSetupItems are the values Apple accepts in a profile's skip_setup_items.
var skipSetupItems = map[string]bool{
	"Accessibility":                       true,
	"ActionButton":                        true,
	"Android":                             true,
	"Appearance":                          true,
	"AppleID":                             true,
	"AppStore":                            true,
	"Biometric":                           true,
	"CameraButton":                        true,
	"DeviceToDeviceMigration":             true,
	"Diagnostics":                         true,
	"DisplayTone":                         true,
	"EnableLockdownMode":                  true,
	"FileVault":                           true,
	"HomeButtonSensitivity":               true,
	"iCloudDiagnostics":                   true,
	"iCloudStorage":                       true,
	"iMessageAndFaceTime":                 true,
	"Intelligence":                        true,
	"Keyboard":                            true,
	"Location":                            true,
	"MessagingActivationUsingPhoneNumber": true,
	"OnBoarding":                          true,
	"Passcode":                            true,
	"Payment":                             true,
	"Privacy":                             true,
	"Restore":                             true,
	"RestoreCompleted":                    true,
	"ScreenSaver":                         true,
	"Safety":                              true,
	"ScreenTime":                          true,
	"SIMSetup":                            true,
	"Siri":                                true,
	"SoftwareUpdate":                      true,
	"SpokenLanguage":                      true,
	"TapToSetup":                          true,
	"TermsOfAddress":                      true,
	"TOS":                                 true,
	"TVHomeScreenSync":                    true,
	"TVProviderSignIn":                    true,
	"TVRoom":                              true,
	"UpdateCompleted":                     true,
	"Wallpaper":                           true,
	"WatchMigration":                      true,
	"Welcome":                             true,
	"Zoom":                                true,
}
