/// `xcrun xcresulttool` output in Apple's formats, for the parsers' tests and the fake `xcrun`.
///
/// Xcode 16 (`get test-results summary` / `get test-results tests`): a run on an iPhone 16 simulator with a
/// passing, a failing (with its location), a skipped, an expected-failure and a crashed test, in two classes.
/// Pre-16 (`get --format json` and its `testsRef --id`): the same run in the `_type`/`_value` encoding.
public enum XCResultFixtures {
    public static let summary = #"""
        {
          "devicesAndConfigurations" : [
            {
              "device" : {
                "architecture" : "arm64",
                "deviceId" : "5B6C1F9E-2C1D-4B8A-9B7E-0A1B2C3D4E5F",
                "deviceName" : "iPhone 16",
                "modelName" : "iPhone 16",
                "osVersion" : "18.2",
                "platform" : "iOS Simulator"
              },
              "expectedFailures" : 1,
              "failedTests" : 2,
              "passedTests" : 1,
              "skippedTests" : 1,
              "testPlanConfiguration" : {
                "configurationId" : "1",
                "configurationName" : "Test Scheme Action"
              }
            }
          ],
          "environmentDescription" : "SampleApp · Built with macOS 15.2",
          "expectedFailures" : 1,
          "failedTests" : 2,
          "finishTime" : 1733140012.75,
          "passedTests" : 1,
          "result" : "Failed",
          "skippedTests" : 1,
          "startTime" : 1733140000.5,
          "statistics" : [ ],
          "testFailures" : [
            {
              "failureText" : "XCTAssertEqual failed: (\"1\") is not equal to (\"2\")",
              "targetName" : "SampleAppTests",
              "testIdentifier" : 2,
              "testIdentifierString" : "SampleAppTests/testMath()",
              "testName" : "testMath()"
            },
            {
              "failureText" : "Test crashed with signal ill.",
              "targetName" : "SampleAppTests",
              "testIdentifier" : 5,
              "testIdentifierString" : "NetworkTests/testCrash()",
              "testName" : "testCrash()"
            }
          ],
          "title" : "Test - SampleApp",
          "topInsights" : [ ],
          "totalTestCount" : 5
        }
        """#

    public static let tests = #"""
        {
          "devices" : [
            {
              "architecture" : "arm64",
              "deviceId" : "5B6C1F9E-2C1D-4B8A-9B7E-0A1B2C3D4E5F",
              "deviceName" : "iPhone 16",
              "modelName" : "iPhone 16",
              "osVersion" : "18.2",
              "platform" : "iOS Simulator"
            }
          ],
          "testNodes" : [
            {
              "children" : [
                {
                  "children" : [
                    {
                      "children" : [
                        {
                          "duration" : "0.0021s",
                          "durationInSeconds" : 0.0021,
                          "name" : "testAddition()",
                          "nodeIdentifier" : "SampleAppTests/testAddition()",
                          "nodeIdentifierURL" : "test://com.apple.xcode/SampleApp/SampleAppTests/SampleAppTests/testAddition()",
                          "nodeType" : "Test Case",
                          "result" : "Passed"
                        },
                        {
                          "children" : [
                            {
                              "name" : "SampleAppTests.swift:14: XCTAssertEqual failed: (\"1\") is not equal to (\"2\")",
                              "nodeType" : "Failure Message",
                              "result" : "Failed"
                            }
                          ],
                          "duration" : "0.0043s",
                          "durationInSeconds" : 0.0043,
                          "name" : "testMath()",
                          "nodeIdentifier" : "SampleAppTests/testMath()",
                          "nodeType" : "Test Case",
                          "result" : "Failed"
                        },
                        {
                          "children" : [
                            {
                              "name" : "SampleAppTests.swift:20: Test skipped - needs a network",
                              "nodeType" : "Failure Message",
                              "result" : "Skipped"
                            }
                          ],
                          "duration" : "0.0010s",
                          "durationInSeconds" : 0.001,
                          "name" : "testSkipped()",
                          "nodeIdentifier" : "SampleAppTests/testSkipped()",
                          "nodeType" : "Test Case",
                          "result" : "Skipped"
                        },
                        {
                          "duration" : "0.0012s",
                          "durationInSeconds" : 0.0012,
                          "name" : "testKnownBug()",
                          "nodeIdentifier" : "SampleAppTests/testKnownBug()",
                          "nodeType" : "Test Case",
                          "result" : "Expected Failure"
                        }
                      ],
                      "name" : "SampleAppTests",
                      "nodeType" : "Test Suite",
                      "result" : "Failed"
                    },
                    {
                      "children" : [
                        {
                          "children" : [
                            {
                              "name" : "Test crashed with signal ill.",
                              "nodeType" : "Failure Message",
                              "result" : "Failed"
                            }
                          ],
                          "duration" : "1.20s",
                          "durationInSeconds" : 1.2,
                          "name" : "testCrash()",
                          "nodeIdentifier" : "NetworkTests/testCrash()",
                          "nodeType" : "Test Case",
                          "result" : "Failed"
                        }
                      ],
                      "name" : "NetworkTests",
                      "nodeType" : "Test Suite",
                      "result" : "Failed"
                    }
                  ],
                  "name" : "SampleAppTests",
                  "nodeType" : "Unit test bundle",
                  "result" : "Failed"
                }
              ],
              "name" : "SampleApp",
              "nodeType" : "Test Plan",
              "result" : "Failed"
            }
          ],
          "testPlanConfigurations" : [
            {
              "configurationId" : "1",
              "configurationName" : "Test Scheme Action"
            }
          ]
        }
        """#

    public static let legacyRoot = #"""
        {
          "_type" : { "_name" : "ActionsInvocationRecord" },
          "actions" : {
            "_type" : { "_name" : "Array" },
            "_values" : [
              {
                "_type" : { "_name" : "ActionRecord" },
                "actionResult" : {
                  "_type" : { "_name" : "ActionResult" },
                  "resultName" : { "_type" : { "_name" : "String" }, "_value" : "action" },
                  "status" : { "_type" : { "_name" : "String" }, "_value" : "failed" },
                  "testsRef" : {
                    "_type" : { "_name" : "Reference" },
                    "id" : { "_type" : { "_name" : "String" }, "_value" : "0~bwDmjnkmpJFCf4ytcJZ-AxQ5pPSM3eLCFzD9hJ0UyXm9p9CIYC8Y3FkW0n2ixt2t0TX5HgGY7kt_4wYwP1C8sA==" },
                    "targetType" : { "_type" : { "_name" : "TypeDefinition" }, "name" : { "_type" : { "_name" : "String" }, "_value" : "ActionTestPlanRunSummaries" } }
                  }
                },
                "schemeCommandName" : { "_type" : { "_name" : "String" }, "_value" : "Test" },
                "title" : { "_type" : { "_name" : "String" }, "_value" : "Testing project SampleApp with scheme SampleApp" }
              }
            ]
          },
          "issues" : {
            "_type" : { "_name" : "ResultIssueSummaries" },
            "testFailureSummaries" : {
              "_type" : { "_name" : "Array" },
              "_values" : [
                {
                  "_type" : { "_name" : "TestFailureIssueSummary", "_supertype" : { "_name" : "IssueSummary" } },
                  "documentLocationInCreatingWorkspace" : {
                    "_type" : { "_name" : "DocumentLocation" },
                    "concreteTypeName" : { "_type" : { "_name" : "String" }, "_value" : "DVTTextDocumentLocation" },
                    "url" : { "_type" : { "_name" : "String" }, "_value" : "file:\/\/\/Users\/rch\/src\/SampleApp\/SampleAppTests\/SampleAppTests.swift#CharacterRangeLen=0&EndingLineNumber=13&StartingLineNumber=13" }
                  },
                  "issueType" : { "_type" : { "_name" : "String" }, "_value" : "Uncategorized" },
                  "message" : { "_type" : { "_name" : "String" }, "_value" : "XCTAssertEqual failed: (\"1\") is not equal to (\"2\")" },
                  "producingTarget" : { "_type" : { "_name" : "String" }, "_value" : "SampleAppTests" },
                  "testCaseName" : { "_type" : { "_name" : "String" }, "_value" : "SampleAppTests.testMath()" }
                }
              ]
            }
          },
          "metrics" : {
            "_type" : { "_name" : "ResultMetrics" },
            "testsCount" : { "_type" : { "_name" : "Int" }, "_value" : "3" },
            "testsFailedCount" : { "_type" : { "_name" : "Int" }, "_value" : "1" },
            "testsSkippedCount" : { "_type" : { "_name" : "Int" }, "_value" : "1" }
          }
        }
        """#

    public static let legacyTests = #"""
        {
          "_type" : { "_name" : "ActionTestPlanRunSummaries" },
          "summaries" : {
            "_type" : { "_name" : "Array" },
            "_values" : [
              {
                "_type" : { "_name" : "ActionTestPlanRunSummary", "_supertype" : { "_name" : "ActionAbstractTestSummary" } },
                "name" : { "_type" : { "_name" : "String" }, "_value" : "Test Scheme Action" },
                "testableSummaries" : {
                  "_type" : { "_name" : "Array" },
                  "_values" : [
                    {
                      "_type" : { "_name" : "ActionTestableSummary", "_supertype" : { "_name" : "ActionAbstractTestSummary" } },
                      "name" : { "_type" : { "_name" : "String" }, "_value" : "SampleAppTests" },
                      "tests" : {
                        "_type" : { "_name" : "Array" },
                        "_values" : [
                          {
                            "_type" : { "_name" : "ActionTestSummaryGroup", "_supertype" : { "_name" : "ActionTestSummaryIdentifiableObject", "_supertype" : { "_name" : "ActionAbstractTestSummary" } } },
                            "name" : { "_type" : { "_name" : "String" }, "_value" : "SampleAppTests" },
                            "subtests" : {
                              "_type" : { "_name" : "Array" },
                              "_values" : [
                                {
                                  "_type" : { "_name" : "ActionTestSummaryGroup", "_supertype" : { "_name" : "ActionTestSummaryIdentifiableObject", "_supertype" : { "_name" : "ActionAbstractTestSummary" } } },
                                  "name" : { "_type" : { "_name" : "String" }, "_value" : "SampleAppTests" },
                                  "subtests" : {
                                    "_type" : { "_name" : "Array" },
                                    "_values" : [
                                      {
                                        "_type" : { "_name" : "ActionTestMetadata", "_supertype" : { "_name" : "ActionTestSummaryIdentifiableObject", "_supertype" : { "_name" : "ActionAbstractTestSummary" } } },
                                        "duration" : { "_type" : { "_name" : "Double" }, "_value" : "0.0021" },
                                        "identifier" : { "_type" : { "_name" : "String" }, "_value" : "SampleAppTests\/testAddition()" },
                                        "name" : { "_type" : { "_name" : "String" }, "_value" : "testAddition()" },
                                        "testStatus" : { "_type" : { "_name" : "String" }, "_value" : "Success" }
                                      },
                                      {
                                        "_type" : { "_name" : "ActionTestMetadata", "_supertype" : { "_name" : "ActionTestSummaryIdentifiableObject", "_supertype" : { "_name" : "ActionAbstractTestSummary" } } },
                                        "duration" : { "_type" : { "_name" : "Double" }, "_value" : "0.0043" },
                                        "identifier" : { "_type" : { "_name" : "String" }, "_value" : "SampleAppTests\/testMath()" },
                                        "name" : { "_type" : { "_name" : "String" }, "_value" : "testMath()" },
                                        "testStatus" : { "_type" : { "_name" : "String" }, "_value" : "Failure" }
                                      },
                                      {
                                        "_type" : { "_name" : "ActionTestMetadata", "_supertype" : { "_name" : "ActionTestSummaryIdentifiableObject", "_supertype" : { "_name" : "ActionAbstractTestSummary" } } },
                                        "duration" : { "_type" : { "_name" : "Double" }, "_value" : "0.001" },
                                        "identifier" : { "_type" : { "_name" : "String" }, "_value" : "SampleAppTests\/testSkipped()" },
                                        "name" : { "_type" : { "_name" : "String" }, "_value" : "testSkipped()" },
                                        "testStatus" : { "_type" : { "_name" : "String" }, "_value" : "Skipped" }
                                      }
                                    ]
                                  }
                                }
                              ]
                            }
                          }
                        ]
                      }
                    }
                  ]
                }
              }
            ]
          }
        }
        """#

    /// An `xcodebuild build` log of Xcode 16 with two targets, a warning, a compile error printed twice (in the
    /// log and in the summary) and a linker failure.
    public static let failingBuildLog = """
        Command line invocation:
            /Applications/Xcode.app/Contents/Developer/usr/bin/xcodebuild build -scheme SampleApp -destination "platform=iOS Simulator,name=iPhone 16,OS=18.2"

        ComputeTargetDependencyGraph
        note: Building targets in dependency order
        note: Target dependency graph (2 targets)
            Target 'SampleKit' in project 'SampleApp' (no dependencies)
            Target 'SampleApp' in project 'SampleApp'
                ➜ Explicit dependency on target 'SampleKit' in project 'SampleApp'

        CompileSwift normal arm64 /Users/rch/src/SampleApp/SampleKit/Model.swift (in target 'SampleKit' from project 'SampleApp')
        /Users/rch/src/SampleApp/SampleKit/Model.swift:7:9: warning: variable 'x' was never mutated; consider changing to 'let' constant
        /Users/rch/src/SampleApp/SampleApp/ContentView.swift:21:17: error: cannot find 'Foo' in scope
        Undefined symbols for architecture arm64:
          "_OBJC_CLASS_$_Missing", referenced from:
               in AppDelegate.o
        ld: symbol(s) not found for architecture arm64
        clang: error: linker command failed with exit code 1 (use -v to see invocation)

        The following build commands failed:
        \tCompileSwift normal arm64 /Users/rch/src/SampleApp/SampleApp/ContentView.swift (in target 'SampleApp' from project 'SampleApp')
        /Users/rch/src/SampleApp/SampleApp/ContentView.swift:21:17: error: cannot find 'Foo' in scope
        (2 failures)
        ** BUILD FAILED **
        """
}
