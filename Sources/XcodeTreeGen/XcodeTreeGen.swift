public enum XcodeTreeGen {}
