import XCTest
@testable import SampleApp

final class SampleAppTests: XCTestCase {
    func testGreetingIsLocalised() {
        XCTAssertFalse(String(localized: "greeting").isEmpty)
    }
}
