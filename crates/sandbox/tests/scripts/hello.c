#include <stdio.h>

int main(void) {
    int total = 0;
    for (int i = 1; i <= 10; i++) total += i * i;
    printf("hello from c %d\n", total);
    return 0;
}
