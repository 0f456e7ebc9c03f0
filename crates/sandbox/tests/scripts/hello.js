const total = Array.from({ length: 10 }, (_, i) => (i + 1) ** 2).reduce((a, b) => a + b, 0);
console.log(`hello from node ${total}`);
