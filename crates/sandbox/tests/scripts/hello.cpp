#include <iostream>
#include <numeric>
#include <vector>

int main() {
    std::vector<int> squares;
    for (int i = 1; i <= 10; i++) squares.push_back(i * i);
    std::cout << "hello from cpp " << std::accumulate(squares.begin(), squares.end(), 0) << "\n";
}
