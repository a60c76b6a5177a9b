// The worked examples of "LLM inference: an analogy between moments and clock cycles".
import { describe, expect, it } from "vitest";
import { Clock, Tensor, add, matmul, processingDelay, unixTimestamp } from "../src/index.ts";

const A = () => Tensor.from([[1, 2], [3, 4]]);
const B = () => Tensor.from([[5, 6], [7, 8]]);

describe("the article's 2×2 examples", () => {
  it("A×B = [[19,22],[43,50]] in 8 cycles (2·2·2 multiply-accumulates)", () => {
    const clock = new Clock();
    const c = clock.run(() => matmul(A(), B()));
    expect(c.toArray()).toEqual([[19, 22], [43, 50]]);
    expect(clock.cycles).toBe(8);
    expect(clock.entries).toHaveLength(1);
    expect(clock.entries[0]).toMatchObject({ op: "matmul", cycles: 8, inputs: [[2, 2], [2, 2]], output: [2, 2] });
  });

  it("A+B = [[6,8],[10,12]] in 4 cycles (one add per element)", () => {
    const clock = new Clock();
    const c = clock.run(() => add(A(), B()));
    expect(c.toArray()).toEqual([[6, 8], [10, 12]]);
    expect(clock.cycles).toBe(4);
  });
});

describe("processing delay = Σ cycle_time × task_complexity", () => {
  it("4 tasks of complexity 1 at 1 ms per cycle take 4 ms", () => {
    const tasks = Array.from({ length: 4 }, () => ({ complexity: 1, cycleTime: 1 }));
    expect(processingDelay(tasks)).toBe(4);
  });

  it("mixes tasks of different sizes and speeds", () => {
    expect(processingDelay([{ complexity: 8, cycleTime: 0.5 }, { complexity: 4, cycleTime: 2 }])).toBe(12);
  });
});

describe("timestamps (the article's section 4.1, with its erratum)", () => {
  it("2023-10-10 12:00:00 UTC is Unix time 1,696,939,200", () => {
    expect(unixTimestamp(2023, 10, 10, 12, 0, 0)).toBe(1_696_939_200);
    // Independent check: the ISO string parsed by the platform.
    expect(Date.parse("2023-10-10T12:00:00Z") / 1000).toBe(1_696_939_200);
  });

  it("records the article's figures: it claims 1,629,705,600 from a formula worth 1,986,811,200", () => {
    const articleClaim = 1_629_705_600;
    // The article's hand formula: years since 1970 plus the day-of-month "10" counted as
    // another ten years, 365 days each (no leap days), plus 12 hours.
    const articleFormula = ((2023 - 1970) + 10) * 365 * 86_400 + 12 * 3_600;
    expect(articleFormula).toBe(1_986_811_200);
    // The claim is in fact 2021-08-23 08:00:00 UTC, not the date the article meant.
    expect(new Date(articleClaim * 1000).toISOString()).toBe("2021-08-23T08:00:00.000Z");
  });
});
