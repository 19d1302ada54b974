import XCTest
@testable import SAMTrain

/// Hand-computed steps of SGD and AdamW (the golden vectors check them in depth).
final class OptimizerTests: XCTestCase {
    func testSGDMomentumFirstStepUsesTheGradientItself() {
        let w = FlatBuffer(count: 2), u = FlatBuffer(count: 2)
        w.copy(from: [1, -2]); u.copy(from: [0.5, 0.25])
        let sgd = SGD(count: 2, momentum: 0.9, nesterov: false, weightDecay: 0.1)
        sgd.step(parameters: w, direction: u, learningRate: 0.1)
        // d = u + 0.1·w = [0.6, 0.05]; buf = d; w -= 0.1·d
        XCTAssertEqual(w[0], 1 - 0.06, accuracy: 1e-7)
        XCTAssertEqual(w[1], -2 - 0.005, accuracy: 1e-7)
        sgd.step(parameters: w, direction: u, learningRate: 0.1)
        // d2 = u + 0.1·w1; buf = 0.9·d1 + d2
        let d2: Float = 0.5 + 0.1 * 0.94
        XCTAssertEqual(w[0], 0.94 - 0.1 * (0.9 * 0.6 + d2), accuracy: 1e-6)
    }

    func testNesterovStep() {
        let w = FlatBuffer(count: 1), u = FlatBuffer(count: 1)
        w.copy(from: [0]); u.copy(from: [1])
        let sgd = SGD(count: 1, momentum: 0.5, nesterov: true, weightDecay: 0)
        sgd.step(parameters: w, direction: u, learningRate: 1)
        XCTAssertEqual(w[0], -1.5)   // d + μ·buf = 1 + 0.5
        sgd.step(parameters: w, direction: u, learningRate: 1)
        XCTAssertEqual(w[0], -1.5 - (1 + 0.5 * 1.5))
    }

    func testAdamWFirstStepMovesByLearningRate() {
        let w = FlatBuffer(count: 2), u = FlatBuffer(count: 2)
        w.copy(from: [1, 1]); u.copy(from: [3, -0.001])
        let adam = AdamW(count: 2, weightDecay: 0.5)
        adam.step(parameters: w, direction: u, learningRate: 0.01)
        // decay 1·(1 − 0.005), then a bias-corrected step of ≈ lr·sign(g)
        XCTAssertEqual(w[0], 0.995 - 0.01, accuracy: 1e-6)
        XCTAssertEqual(w[1], 0.995 + 0.01, accuracy: 1e-4)
        XCTAssertEqual(adam.stepCount, 1)
    }

    func testSchedules() throws {
        let cosine = LearningRateSchedule(base: 0.1, shape: .cosine, totalSteps: 100)
        XCTAssertEqual(cosine.rate(at: 0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(cosine.rate(at: 50), 0.05, accuracy: 1e-6)
        XCTAssertEqual(cosine.rate(at: 100), 0, accuracy: 1e-7)
        let multi = LearningRateSchedule(base: 1, shape: try LearningRateSchedule.parseShape("multistep:0.5,0.75:0.1"), totalSteps: 100)
        XCTAssertEqual(multi.rate(at: 49), 1)
        XCTAssertEqual(multi.rate(at: 50), 0.1, accuracy: 1e-7)
        XCTAssertEqual(multi.rate(at: 80), 0.01, accuracy: 1e-8)
        let warm = LearningRateSchedule(base: 1, shape: .constant, totalSteps: 100, warmupSteps: 4)
        XCTAssertEqual((0..<5).map { warm.rate(at: $0) }, [0.25, 0.5, 0.75, 1, 1])
        XCTAssertThrowsError(try LearningRateSchedule.parseShape("linear"))
        XCTAssertThrowsError(try LearningRateSchedule.parseShape("multistep:1.5"))
    }
}
